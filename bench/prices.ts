/**
 * AWS unit prices the cost model uses (US East, N. Virginia; on-demand, no free tier), in USD.
 * Read on 2026-12-04 from the sources named beside each (stored copies of public pages; the
 * pricing pages themselves were not reachable from here, so check them before a budget).
 */
export const PRICES = {
  /** S3 Standard: GET/HEAD per request ($0.0004 per 1,000). Source: c3x.dev/blog/s3-request-fees-explained, quoting aws.amazon.com/s3/pricing. */
  s3Get: 0.0004 / 1000,
  /** S3 Standard: PUT, COPY, POST, LIST per request ($0.005 per 1,000). Same source. DELETE is free. */
  s3PutOrList: 0.005 / 1000,
  /** SQS FIFO: per request (64 KB chunk), $0.50 per million. Source: aws.amazon.com/sqs/pricing (FIFO queues). */
  sqsFifoRequest: 0.5 / 1_000_000,
  /** Lambda: per invocation, $0.20 per million. Source: aws.amazon.com/lambda/pricing. */
  lambdaInvocation: 0.2 / 1_000_000,
  /** Lambda on arm64: per GB-second, $0.0000133334. Same source. */
  lambdaArmGbSecond: 0.0000133334,
  /** IoT Core connectivity: per connection-minute, $0.08 per million minutes. Source: aws.amazon.com/iot-core/pricing. */
  iotConnectionMinute: 0.08 / 1_000_000,
  /** IoT Core messaging: per message (5 KB increments), $1.00 per million (first billion a month). Same source. */
  iotMessage: 1 / 1_000_000,
  /** KMS: per request, $0.03 per 10,000 (the renewer's one Sign a day; the data key of SSE-KMS calls). Source: aws.amazon.com/kms/pricing. */
  kmsRequest: 0.03 / 10_000,
} as const;
