/**
 * The wait between two polls, which a nudge ends at once. A nudge that comes while no wait runs
 * (a poll is in flight) is kept, and the next wait does not happen: the document it announces
 * may have been written after that poll's fetch. `pollStarting` forgets such a nudge, because the
 * poll about to run fetches whatever it announced.
 */
export class PollAlarm {
  /** Ends the running wait; set only while one runs (cleared synchronously as it ends, so no nudge falls in between). */
  #ring: (() => void) | undefined;
  #rungMeanwhile = false;

  /** Whether a wait is running now. */
  get waiting(): boolean {
    return this.#ring !== undefined;
  }

  /** Ends the running wait, or skips the next one. */
  ring(): void {
    if (this.#ring) this.#ring();
    else this.#rungMeanwhile = true;
  }

  /** A poll starts: what it fetches covers every nudge so far. */
  pollStarting(): void {
    this.#rungMeanwhile = false;
  }

  /** Waits `seconds`, less if rung or `signal` aborts; not at all if rung since the last poll started, or already aborted. */
  wait(seconds: number, signal: AbortSignal): Promise<void> {
    // Stopped while a poll ran: an aborted signal never fires again, so no wait at all.
    if (this.#rungMeanwhile || signal.aborted) {
      this.#rungMeanwhile = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#ring = undefined;
        resolve();
      };
      const timer = setTimeout(done, seconds * 1000);
      signal.addEventListener('abort', done, { once: true });
      this.#ring = done;
    });
  }
}
