/** The HTTP status of a failed Kubernetes API call (client-node throws `ApiException` with `code`). */
export function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Resolves `undefined` when the call fails with `status`; any other failure is thrown. */
async function ignoring<T>(status: number, call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (error) {
    if (statusOf(error) === status) return undefined;
    throw error;
  }
}

/** Creating what already exists is fine: the outcome is the same (idempotent reconcile). */
export const ignoreConflict = <T>(call: Promise<T>) => ignoring(409, call);

/** Deleting (or reading) what is already gone is fine too. */
export const ignoreNotFound = <T>(call: Promise<T>) => ignoring(404, call);

/** A short description for logs and reports; never the request or response body (it may hold a token). */
export function describeApiError(error: unknown): string {
  const status = statusOf(error);
  const message = error instanceof Error ? error.message.split('\n')[0]!.slice(0, 300) : String(error);
  return status ? `HTTP ${status}: ${message}` : message;
}
