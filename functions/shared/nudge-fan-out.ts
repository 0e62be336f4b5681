/**
 * Every push channel at once (locally the SSE hub and an MQTT broker; in AWS IoT Core), as one
 * publisher the reconciler calls after each document it writes. Publishing never holds up or
 * fails the write: a nudge lost costs at most the agent's safety poll, so a failure is handed to
 * `onError` (logged) and nothing more.
 */
import type { NudgePublisher } from '../../shared/ports.ts';

export function nudgeFanOut(publishers: readonly NudgePublisher[], onError: (error: unknown) => void): NudgePublisher {
  return {
    publish: (nudge) => {
      for (const publisher of publishers) {
        try {
          void Promise.resolve(publisher.publish(nudge)).catch(onError);
        } catch (error) {
          onError(error);
        }
      }
    },
  };
}
