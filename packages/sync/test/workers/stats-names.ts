export const NAMES = ['hits', 'bytes', 'active'] as const;
