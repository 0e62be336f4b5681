/**
 * Ringmaster in AWS: the FIFO queue and its DLQ, the bucket, the functions, the HTTP API
 * (portal routes IAM-authorized, the cluster webhook checked by HMAC in the function), the
 * managed policy that lets a VM read only its own document and write only its own report,
 * and alarms on what an operator must hear about.
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { CfnStage } from 'aws-cdk-lib/aws-apigatewayv2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { HttpApi, HttpMethod } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Alarm, ComparisonOperator, Dashboard, GraphWidget, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Effect, ManagedPolicy, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnPolicy } from 'aws-cdk-lib/aws-iot';
import { InvocationType, Trigger } from 'aws-cdk-lib/triggers';
import { type IKey, Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { Architecture, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { type ICommandHooks, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { BlockPublicAccess, Bucket, BucketEncryption, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { fileURLToPath } from 'node:url';
import { API_FUNCTIONS, type ApiFunction, ROUTE_IDS, routes } from '../shared/contract/routes.ts';
import { everyKeyUnder, type StorePrefix, storeKeys, storePrefixes } from '../shared/contract/store-layout.ts';
import { NUDGE_TOPIC_PREFIX } from '../shared/contract/nudges.ts';
import { parseAcmeSettings } from '../shared/certificates/acme-settings.ts';

export interface RingmasterStackProps extends StackProps {
  /** Names resources apart when several stages share an account. */
  readonly stage: string;
  /** Most reconciles running at once (one per resource group at a time, by the FIFO groups). */
  readonly reconcilerConcurrency?: number;
  /**
   * The document roots (asymmetric ECC_NIST_P256 KMS keys, SIGN_VERIFY), oldest first: the last
   * signs delegations. Default: one made by this stack. To rotate, list the current root and its
   * successor (the renewer announces the successor, signed by the current root), and later the
   * successor alone (the renewer retires the old root). See the README, "Security model".
   */
  readonly documentRootKeyArns?: readonly string[];
  /**
   * The account's IoT Core data endpoint (`aws iot describe-endpoint --endpoint-type
   * iot:Data-ATS`): given, the reconciler nudges each VM over MQTT when its document changes.
   * Unset: agents poll only.
   */
  readonly iotDataEndpoint?: string;
  /** Where VMs order their TLS certificates: a directory URL or production / staging (Let's Encrypt; default production), and the account's e-mail. */
  readonly acme?: { readonly directory?: string; readonly email?: string };
}

/** The principal tags an agent's role (or Roles Anywhere session) carries. */
export const AGENT_TAGS = { resourceGroup: 'ringmaster-rg', vm: 'ringmaster-vm' } as const;

const root = fileURLToPath(new URL('..', import.meta.url));
const RECONCILER_TIMEOUT = Duration.seconds(60);
/** Receives of an event before it is given up (five: a store outage of a few minutes is waited out, a poison message is not retried for ever). */
const MAX_RECEIVES = 5;

/** `dead-letters` → `DeadLetters`: construct ids from function names. */
const pascalCase = (name: string) => name.replace(/(^|-)([a-z])/g, (_, _dash: string, letter: string) => letter.toUpperCase());

export class RingmasterStack extends Stack {
  readonly bucket: Bucket;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly agentPolicy: ManagedPolicy;
  /** The IoT policy every VM's certificate is attached with: connect as its thing, read its own nudge topic. */
  readonly devicePolicy: CfnPolicy;
  readonly api: HttpApi;

  constructor(scope: Construct, id: string, props: RingmasterStackProps) {
    super(scope, id, props);
    const key = new Key(this, 'DataKey', { enableKeyRotation: true, description: 'Ringmaster state, documents and queues' });

    // Server access logs of the store go to a bucket of their own (S3 logs only to SSE-S3 buckets).
    const accessLogs = new Bucket(this, 'StoreAccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(90) }],
    });
    Validations.of(accessLogs).acknowledge({ id: 'AwsSolutions-S1', reason: 'This is the access-log bucket; logging it into itself would loop.' });

    this.bucket = new Bucket(this, 'Store', {
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'store/',
      encryption: BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      versioned: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        // Old versions of documents and state are for recovery, not for ever.
        { id: 'old-versions', noncurrentVersionExpiration: Duration.days(30) },
        // Reports are rewritten every apply: their history has no use.
        { id: 'old-reports', prefix: storePrefixes.reports, noncurrentVersionExpiration: Duration.days(1) },
      ],
    });

    // 14 days: the longest SQS keeps a message, so an operator has two weeks to replay.
    this.deadLetterQueue = new Queue(this, 'DeadLetters', { fifo: true, retentionPeriod: Duration.days(14), encryption: QueueEncryption.KMS, encryptionMasterKey: key, enforceSSL: true });
    this.queue = new Queue(this, 'Events', {
      fifo: true,
      // Six times the function timeout, as AWS advises for an SQS event source.
      visibilityTimeout: Duration.seconds(RECONCILER_TIMEOUT.toSeconds() * 6),
      retentionPeriod: Duration.days(4),
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVES },
    });

    const masterKey = new Secret(this, 'MasterKey', {
      description: 'Ringmaster master key: cluster tokens, webhook keys and datastore passwords derive from it',
      encryptionKey: key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    Validations.of(masterKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Every cluster token, webhook key and datastore password derives from this key; rotating it would re-key running clusters. Rotation is a planned operation, not a schedule.',
    });

    // The root documents are trusted under: an asymmetric KMS key, never out of KMS. Only the
    // renewer may sign with it (one Sign a day); agents are given its public key.
    const documentRoots: IKey[] = props.documentRootKeyArns?.length
      ? props.documentRootKeyArns.map((arn, i) => Key.fromKeyArn(this, `DocumentRoot${i + 1}`, arn))
      : [new Key(this, 'DocumentRoot', { keySpec: KeySpec.ECC_NIST_P256, keyUsage: KeyUsage.SIGN_VERIFY, description: 'Ringmaster document root: certifies the online key documents are signed with', removalPolicy: RemovalPolicy.RETAIN })];
    for (const made of documentRoots) {
      if (made instanceof Key) Validations.of(made).acknowledge({ id: 'AwsSolutions-KMS5', reason: 'An asymmetric signing key cannot rotate automatically: roots rotate by announcement (README, Security model).' });
    }
    // The online key, its delegation and the root announcements: written by the renewer only, read by the reconciler.
    const signingCredentials = new Secret(this, 'SigningCredentials', {
      description: 'Ringmaster signing credentials: the online document key (Ed25519), its delegation by the root KMS key, root announcements',
      encryptionKey: key,
      // A placeholder until the renewer's first run; alphanumeric, so never taken for damaged credentials.
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
    });
    Validations.of(signingCredentials).acknowledge({ id: 'AwsSolutions-SMG4', reason: 'The renewer function replaces this secret daily (a new online key each time); Secrets Manager rotation would only duplicate it.' });

    const environment = { RINGMASTER_BUCKET: this.bucket.bucketName, RINGMASTER_QUEUE_URL: this.queue.queueUrl, RINGMASTER_DLQ_URL: this.deadLetterQueue.queueUrl, POWERTOOLS_LOG_LEVEL: 'INFO' };
    const fn = (name: string, entry: string, timeout = Duration.seconds(10), commandHooks?: ICommandHooks) =>
      new NodejsFunction(this, name, {
        entry: `${root}functions/${entry}/lambda.ts`,
        runtime: Runtime.NODEJS_24_X,
        architecture: Architecture.ARM_64,
        memorySize: 512,
        timeout,
        environment,
        loggingFormat: LoggingFormat.JSON,
        // The SDK is bundled too: the version we test is the version that runs (not the runtime's own).
        bundling: { format: OutputFormat.ESM, minify: true, sourceMap: true, target: 'node24', externalModules: [], mainFields: ['module', 'main'], banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);", ...(commandHooks ? { commandHooks } : {}) },
      });
    // The status function serves the status page: its built files go beside the bundle (functions/status/lambda.ts reads them).
    const pageFiles: ICommandHooks = {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (_input, output) => [`"${process.execPath}" "${root}scripts/build-page.ts" "${output}/page"`],
    };

    // One function per API function of the route table (shared/contract/routes.ts), named after it.
    const api = Object.fromEntries(API_FUNCTIONS.map((name) => [name, fn(`${pascalCase(name)}Api`, name, undefined, name === 'status' ? pageFiles : undefined)])) as Record<ApiFunction, NodejsFunction>;
    const { ingest, cluster, status } = api;
    const deadLetters = api['dead-letters'];
    const reconciler = fn('Reconciler', 'reconciler', RECONCILER_TIMEOUT);
    // Every hour, every group is nudged so its documents are signed again after a day (they hold a
    // week), a share of a large group's per run (shared/state/resigning.ts).
    const refresh = fn('Refresh', 'refresh', Duration.minutes(5));
    new Rule(this, 'RefreshSchedule', { schedule: Schedule.rate(Duration.hours(1)), targets: [new LambdaFunction(refresh)], description: 'Ringmaster: re-sign documents before they expire' });
    refresh.addToRolePolicy(new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [everyKeyUnder('state')] } } }));
    this.queue.grantSendMessages(refresh);
    this.queue.grantSendMessages(ingest);
    this.queue.grantSendMessages(cluster);
    // Only the clusters' keys, never the state with every secret of a group: this function is open without IAM.
    this.bucket.grantRead(cluster, everyKeyUnder('clusterAuth'));
    // Issued kubeconfigs: the cluster function writes them, the status function hands them to the portal.
    this.bucket.grantPut(cluster, everyKeyUnder('kubeconfigs'));
    this.bucket.grantRead(status, everyKeyUnder('kubeconfigs'));
    this.bucket.grantRead(status, everyKeyUnder('status'));
    this.bucket.grantRead(status, everyKeyUnder('reports'));
    // What is really stored, next to what the state wants (the status shows envelopes only, never content).
    this.bucket.grantRead(status, everyKeyUnder('desired'));
    this.bucket.grantReadWrite(reconciler);
    this.bucket.grantDelete(reconciler, everyKeyUnder('desired'));
    this.bucket.grantDelete(reconciler, everyKeyUnder('kubeconfigs'));
    this.bucket.grantDelete(reconciler, everyKeyUnder('clusterAuth'));
    this.deadLetterQueue.grantSendMessages(reconciler);
    this.deadLetterQueue.grantConsumeMessages(deadLetters);
    this.deadLetterQueue.grantSendMessages(deadLetters);
    this.queue.grantSendMessages(deadLetters);
    masterKey.grantRead(reconciler);
    reconciler.addEnvironment('RINGMASTER_MASTER_KEY_SECRET', masterKey.secretArn);
    signingCredentials.grantRead(reconciler);
    reconciler.addEnvironment('RINGMASTER_SIGNING_SECRET', signingCredentials.secretArn);
    // Daily: a new online key, delegated by the root (one KMS Sign a day), and root announcements when the roots changed.
    const renewer = fn('Renewer', 'renewer', Duration.minutes(1));
    new Rule(this, 'RenewSchedule', { schedule: Schedule.rate(Duration.days(1)), targets: [new LambdaFunction(renewer)], description: 'Ringmaster: renew the delegation of the online document key' });
    for (const documentRoot of documentRoots) documentRoot.grant(renewer, 'kms:Sign', 'kms:GetPublicKey');
    signingCredentials.grantRead(renewer);
    signingCredentials.grantWrite(renewer);
    renewer.addEnvironment('RINGMASTER_SIGNING_SECRET', signingCredentials.secretArn);
    renewer.addEnvironment('RINGMASTER_ROOT_KEY_IDS', documentRoots.map((documentRoot) => documentRoot.keyArn).join(','));
    // The first signing credentials exist once the stack does: the renewer runs during the deploy
    // (and again whenever it changes), so no document waits a day or for an operator.
    new Trigger(this, 'RenewOnDeploy', { handler: renewer, timeout: Duration.minutes(2), invocationType: InvocationType.REQUEST_RESPONSE, executeAfter: [signingCredentials, ...documentRoots.filter((made): made is Key => made instanceof Key)] });
    // On the last receive the reconciler dead-letters a failing message itself, with the real reason.
    reconciler.addEnvironment('RINGMASTER_MAX_RECEIVES', String(MAX_RECEIVES));
    reconciler.addEventSource(new SqsEventSource(this.queue, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: props.reconcilerConcurrency ?? 20 }));

    this.api = new HttpApi(this, 'Api', { description: 'Ringmaster: portal events, cluster webhooks, status' });
    const apiLogs = new LogGroup(this, 'ApiAccessLogs', { retention: RetentionDays.THREE_MONTHS, encryptionKey: key });
    const stage = this.api.defaultStage!.node.defaultChild as CfnStage;
    stage.accessLogSettings = {
      destinationArn: apiLogs.logGroupArn,
      format: JSON.stringify({ requestId: '$context.requestId', ip: '$context.identity.sourceIp', caller: '$context.identity.caller', route: '$context.routeKey', status: '$context.status', latency: '$context.responseLatency' }),
    };
    key.grantEncryptDecrypt(new ServicePrincipal(`logs.${this.region}.amazonaws.com`));
    const iam = new HttpIamAuthorizer();
    const integrations = Object.fromEntries(API_FUNCTIONS.map((name) => [name, new HttpLambdaIntegration(`${pascalCase(name)}Integration`, api[name])])) as Record<ApiFunction, HttpLambdaIntegration>;
    for (const id of ROUTE_IDS) {
      const route = routes[id];
      const added = this.api.addRoutes({ path: route.path, methods: [HttpMethod[route.method]], integration: integrations[route.function], ...(route.auth === 'portal' || route.auth === 'page' || route.auth === 'agent' ? { authorizer: iam } : {}) });
      for (const made of added) {
        if (route.auth === 'cluster') {
          // Clusters sign with their own key; the function checks it (no IAM identity on a VM cluster).
          Validations.of(made).acknowledge({ id: 'AwsSolutions-APIG4', reason: "Clusters have no AWS identity: the function checks an HMAC-SHA256 signature with the cluster's own key, a 5-minute timestamp window and replays." });
        } else if (route.auth === 'public') {
          Validations.of(made).acknowledge({ id: 'AwsSolutions-APIG4', reason: 'Public by design: the API description and a liveness answer, no data.' });
        }
      }
    }
    reconciler.addEnvironment('RINGMASTER_PUBLIC_URL', this.api.apiEndpoint);
    // Checked at synth (an error names the property), so a deploy never ships a reconciler that fails at cold start.
    const acme = parseAcmeSettings(props.acme ?? {}, { directory: 'acme.directory', email: 'acme.email' });
    reconciler.addEnvironment('RINGMASTER_ACME_DIRECTORY', acme.directoryUrl);
    if (acme.email) reconciler.addEnvironment('RINGMASTER_ACME_EMAIL', acme.email);

    // Push: a VM (an IoT thing named `<rg>_<vm>`, with its own certificate) may connect as
    // itself and read its own nudge topic, nothing else; only the reconciler publishes there.
    const nudges = `arn:${this.partition}:iot:${this.region}:${this.account}:topic/${NUDGE_TOPIC_PREFIX}*`;
    const thing = '${iot:Connection.Thing.ThingName}';
    this.devicePolicy = new CfnPolicy(this, 'AgentDevicePolicy', {
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: `arn:${this.partition}:iot:${this.region}:${this.account}:client/${thing}`, Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } } },
          { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `arn:${this.partition}:iot:${this.region}:${this.account}:topicfilter/${NUDGE_TOPIC_PREFIX}${thing}` },
          { Effect: 'Allow', Action: 'iot:Receive', Resource: `arn:${this.partition}:iot:${this.region}:${this.account}:topic/${NUDGE_TOPIC_PREFIX}${thing}` },
        ],
      },
    });
    if (props.iotDataEndpoint) {
      reconciler.addEnvironment('RINGMASTER_IOT_ENDPOINT', props.iotDataEndpoint);
      reconciler.addToRolePolicy(new PolicyStatement({ effect: Effect.ALLOW, actions: ['iot:Publish'], resources: [nudges] }));
    }

    // Agents: one policy for every VM, scoped by the principal's tags (ABAC), no policy per VM.
    const tag = (name: string) => `\${aws:PrincipalTag/${name}}`;
    const ownDocument = `${this.bucket.bucketArn}/${storeKeys.desired(tag(AGENT_TAGS.resourceGroup), tag(AGENT_TAGS.vm))}`;
    const ownReport = `${this.bucket.bucketArn}/${storeKeys.report(tag(AGENT_TAGS.resourceGroup), tag(AGENT_TAGS.vm))}`;
    this.agentPolicy = new ManagedPolicy(this, 'AgentPolicy', {
      description: 'A Ringmaster VM agent: read its own desired document, write its own report (scoped by principal tags)',
      statements: [
        new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:GetObject'], resources: [ownDocument], conditions: { StringLike: { [`aws:PrincipalTag/${AGENT_TAGS.resourceGroup}`]: '?*', [`aws:PrincipalTag/${AGENT_TAGS.vm}`]: '?*' } } }),
        new PolicyStatement({ effect: Effect.ALLOW, actions: ['s3:PutObject'], resources: [ownReport], conditions: { StringLike: { [`aws:PrincipalTag/${AGENT_TAGS.resourceGroup}`]: '?*', [`aws:PrincipalTag/${AGENT_TAGS.vm}`]: '?*' } } }),
        new PolicyStatement({ effect: Effect.ALLOW, actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [key.keyArn], conditions: { StringEquals: { 'kms:ViaService': `s3.${this.region}.amazonaws.com` } } }),
        // The agent routes (a canary's report) about its own VM only: API Gateway checks this before the function runs.
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['execute-api:Invoke'],
          resources: ROUTE_IDS.filter((id) => routes[id].auth === 'agent').map((id) =>
            // The one stage the API has, named: no wildcard in the resource.
            this.api.arnForExecuteApi(routes[id].method, routes[id].path.replace('{rg}', tag(AGENT_TAGS.resourceGroup)).replace('{vm}', tag(AGENT_TAGS.vm)), this.api.defaultStage!.stageName),
          ),
          conditions: { StringLike: { [`aws:PrincipalTag/${AGENT_TAGS.resourceGroup}`]: '?*', [`aws:PrincipalTag/${AGENT_TAGS.vm}`]: '?*' } },
        }),
      ],
    });

    const alarms = new Topic(this, 'Alarms', { masterKey: key });
    const alarm = (name: string, metric: IMetric, threshold: number, description: string) =>
      new Alarm(this, name, { metric, threshold, evaluationPeriods: 1, comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, treatMissingData: TreatMissingData.NOT_BREACHING, alarmDescription: description }).addAlarmAction(new SnsAction(alarms));
    alarm('DeadLettersWaiting', this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1) }), 1, 'Events could not be processed: see `ringmaster dlq list`');
    alarm('EventsDelayed', this.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1) }), 300, 'The oldest queued event waits for more than 5 minutes');
    for (const [name, f] of Object.entries({ ...api, reconciler, refresh, renewer })) {
      alarm(`${name}Errors`, f.metricErrors({ period: Duration.minutes(5) }), 1, `${name} function errors`);
      alarm(`${name}Throttles`, f.metricThrottles({ period: Duration.minutes(5) }), 1, `${name} function throttled`);
    }
    new Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new GraphWidget({ title: 'Queue', left: [this.queue.metricApproximateNumberOfMessagesVisible(), this.queue.metricApproximateAgeOfOldestMessage()] }),
          new GraphWidget({ title: 'Dead letters', left: [this.deadLetterQueue.metricApproximateNumberOfMessagesVisible()] }),
          new GraphWidget({ title: 'Reconciler', left: [reconciler.metricInvocations(), reconciler.metricErrors()], right: [reconciler.metricDuration()] }),
        ],
      ],
    });

    // Grants of the CDK (grantRead/grantReadWrite/grantSendMessages) are scoped to this bucket,
    // its prefixes and this key; the wildcards are in their action lists and object keys.
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWSLambdaBasicExecutionRole only lets a function write its own logs.',
    });
    const scopedGrants = `Object-level grants on this bucket, limited by prefix (${Object.values(storePrefixes).join(', ')}), and the KMS actions SSE-KMS needs on this key; no other resource.`;
    for (const finding of [
      'Action::kms:GenerateDataKey*',
      'Action::kms:ReEncrypt*',
      'Action::s3:Abort*',
      'Action::s3:DeleteObject*',
      'Action::s3:GetBucket*',
      'Action::s3:GetObject*',
      'Action::s3:List*',
      `Resource::<${this.getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/*`,
      ...(Object.keys(storePrefixes) as StorePrefix[]).map((prefix) => `Resource::<${this.getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/${everyKeyUnder(prefix)}`),
    ]) {
      Validations.of(this).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason: scopedGrants });
    }

    new CfnOutput(this, 'ApiUrl', { value: this.api.apiEndpoint });
    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'AgentPolicyArn', { value: this.agentPolicy.managedPolicyArn });
    // Agents trust its public key: `aws kms get-public-key --key-id <arn> --query PublicKey --output text` prints it as RINGMASTER_TRUSTED_KEYS wants it.
    new CfnOutput(this, 'DocumentRootKeyArn', { value: documentRoots.at(-1)!.keyArn });
  }
}
