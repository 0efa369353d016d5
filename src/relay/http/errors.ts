/** The relay's one error type: a code from the shared table and its HTTP status. */
import { RELAY_ERROR_STATUS, type RelayErrorBody, type RelayErrorCode } from '../../shared/relay-api.js';

export class RelayError extends Error {
  readonly code: RelayErrorCode;
  readonly status: number;
  /** Extra response headers (e.g. retry-after). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: RelayErrorCode, message: string, headers: Record<string, string> = {}) {
    // A refusal is an answer, not a bug: skip the stack trace (a measurable share of CPU when a
    // client floods the relay with bad requests).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'RelayError';
    this.code = code;
    this.status = RELAY_ERROR_STATUS[code];
    this.headers = headers;
  }

  toBody(): RelayErrorBody {
    return { error: this.message, code: this.code };
  }
}

export function isRelayError(e: unknown): e is RelayError {
  return e instanceof RelayError;
}
