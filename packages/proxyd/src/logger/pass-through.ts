// The logger-level format of proxyd's winston loggers: none. Each transport formats its own line
// (printf of the batch's text); winston's default logger format, json(), would also stringify every
// info object once per call, for a line no transport writes (measured: 3% of the logger thread).
import winston from 'winston';

export const passThrough = winston.format((info) => info);
