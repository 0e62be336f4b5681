/** The agent's wait between polls: a nudge ends it, and one that comes while a poll runs is never lost. */
import { PollAlarm } from '../agent/poll-alarm.ts';

/** Whether `wait` ended within a second (the waits asked for here are a minute). */
async function endsSoon(wait: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([wait.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 1000)))]);
  clearTimeout(timer);
  return ended;
}

test('a ring ends the running wait at once', async () => {
  const alarm = new PollAlarm();
  const stop = new AbortController();
  const wait = alarm.wait(60, stop.signal);
  expect(alarm.waiting).toBe(true);
  alarm.ring();
  expect(await endsSoon(wait)).toBe(true);
  expect(alarm.waiting).toBe(false);
});

test('a ring while a poll runs skips the next wait, once; a poll that starts afterwards covers it', async () => {
  const alarm = new PollAlarm();
  const stop = new AbortController();
  alarm.ring();
  expect(await endsSoon(alarm.wait(60, stop.signal))).toBe(true);
  // Only once: the wait after that is a whole one again.
  const whole = alarm.wait(60, stop.signal);
  expect(await endsSoon(whole)).toBe(false);
  alarm.ring();
  await whole;
  // Rung before a poll started: that poll fetched what the ring announced, so the wait after it is whole.
  alarm.ring();
  alarm.pollStarting();
  const after = alarm.wait(60, stop.signal);
  expect(await endsSoon(after)).toBe(false);
  stop.abort();
  expect(await endsSoon(after)).toBe(true);
});

test('stopped: a running wait ends, and a wait asked for after the stop does not start', async () => {
  const alarm = new PollAlarm();
  const stop = new AbortController();
  const running = alarm.wait(60, stop.signal);
  stop.abort();
  expect(await endsSoon(running)).toBe(true);
  expect(await endsSoon(alarm.wait(60, stop.signal))).toBe(true);
  expect(alarm.waiting).toBe(false);
});
