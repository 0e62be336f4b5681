/** The AWS app, synthesized (bundling skipped): the resources and policies that matter, and cdk-nag. */
import { ROUTE_IDS, routeKey, routes } from '../shared/contract/routes.ts';
import { App, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AGENT_TAGS, RingmasterStack } from '../cdk/ringmaster-stack.ts';

const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
const stack = new RingmasterStack(app, 'Ringmaster-test', { stage: 'test', env: { account: '123456789012', region: 'eu-central-1' } });
const template = Template.fromStack(stack);

test('cdk-nag AWS Solutions checks pass, every acknowledgement with its reason', () => {
  const result = new AwsSolutionsChecks(app).validateScope(stack as Stack) as { violations: Array<{ ruleName: string }> };
  expect(result.violations.map((v) => v.ruleName)).toEqual([]);
});

test('the event queue is FIFO, KMS-encrypted, with a FIFO dead-letter queue after 5 receives', () => {
  template.hasResourceProperties('AWS::SQS::Queue', {
    FifoQueue: true,
    VisibilityTimeout: 360,
    RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    KmsMasterKeyId: Match.anyValue(),
  });
  template.hasResourceProperties('AWS::SQS::Queue', { FifoQueue: true, MessageRetentionPeriod: 14 * 24 * 3600 });
});

test('the store: versioned, KMS, no public access, TLS only, old versions expire', () => {
  template.hasResourceProperties('AWS::S3::Bucket', {
    VersioningConfiguration: { Status: 'Enabled' },
    BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() } })] },
    PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
    LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 } })]) },
  });
  template.hasResourceProperties('AWS::S3::BucketPolicy', {
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
  });
});

test('functions run on Node.js 24, arm64; the reconciler reads the queue with partial batch failures and a concurrency cap', () => {
  const functions = template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs24.x', Architectures: ['arm64'] } });
  expect(Object.keys(functions)).toHaveLength(7);
  template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'], ScalingConfig: { MaximumConcurrency: 20 } });
});

test("the reconciler gives up on the queue's last receive itself, so the dead letter keeps the real reason", () => {
  const queue = Object.values(template.findResources('AWS::SQS::Queue')).find((q) => JSON.stringify(q).includes('RedrivePolicy')) as { Properties: { RedrivePolicy: { maxReceiveCount: number } } };
  const reconciler = Object.values(template.findResources('AWS::Lambda::Function')).find((f) => JSON.stringify(f).includes('RINGMASTER_MASTER_KEY_SECRET')) as { Properties: { Environment: { Variables: Record<string, string> } } };
  expect(reconciler.Properties.Environment.Variables.RINGMASTER_MAX_RECEIVES).toBe(String(queue.Properties.RedrivePolicy.maxReceiveCount));
});

test('every route of the table is an API route: portal routes need IAM; cluster and public routes are checked in the function', () => {
  const made = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => (r as { Properties: { RouteKey: string; AuthorizationType: string } }).Properties);
  expect(made.map((r) => r.RouteKey).sort()).toEqual(ROUTE_IDS.map(routeKey).sort());
  for (const id of ROUTE_IDS) {
    expect(made.find((r) => r.RouteKey === routeKey(id))!.AuthorizationType).toBe(['portal', 'page', 'agent'].includes(routes[id].auth) ? 'AWS_IAM' : 'NONE');
  }
  // Spot checks against the table's own words.
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/events', AuthorizationType: 'AWS_IAM' });
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/clusters/{rg}/endpoints', AuthorizationType: 'NONE' });
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'GET /v1/resource-groups/{rg}/kubeconfigs/{user}', AuthorizationType: 'AWS_IAM' });
});

test('issued kubeconfigs: the cluster function may only write them, the status function only read them, the reconciler delete them', () => {
  const policies = template.findResources('AWS::IAM::Policy');
  const statementsOf = (role: string) =>
    Object.values(policies)
      .filter((p) => JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles).includes(role))
      .flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown }> } } }).Properties.PolicyDocument.Statement);
  const on = (role: string) => statementsOf(role).filter((s) => JSON.stringify(s.Resource).includes('/kubeconfigs/*')).flatMap((s) => [s.Action].flat());
  expect(on('ClusterApiServiceRole').every((action) => /^s3:(PutObject|PutObjectLegalHold|PutObjectRetention|PutObjectTagging|PutObjectVersionTagging|Abort\*)$/.test(action))).toBe(true);
  expect(on('ClusterApiServiceRole')).toContain('s3:PutObject');
  expect(on('StatusApiServiceRole').some((action) => action.startsWith('s3:GetObject'))).toBe(true);
  expect(on('StatusApiServiceRole').some((action) => action.startsWith('s3:Put') || action.startsWith('s3:Delete'))).toBe(false);
  expect(on('ReconcilerServiceRole')).toContain('s3:DeleteObject*');
});

test("an agent's policy reads only desired/<its rg>/<its vm>.json and writes only its report, by principal tags", () => {
  const policies = template.findResources('AWS::IAM::ManagedPolicy');
  const statements = Object.values(policies).flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: unknown[] } } }).Properties.PolicyDocument.Statement) as Array<{ Action: string; Resource: unknown; Condition?: unknown }>;
  const text = (value: unknown) => JSON.stringify(value);
  const get = statements.find((s) => s.Action === 's3:GetObject')!;
  const put = statements.find((s) => s.Action === 's3:PutObject')!;
  expect(text(get.Resource)).toContain(`/desired/\${aws:PrincipalTag/${AGENT_TAGS.resourceGroup}}/\${aws:PrincipalTag/${AGENT_TAGS.vm}}.json`);
  expect(text(put.Resource)).toContain(`/reports/\${aws:PrincipalTag/${AGENT_TAGS.resourceGroup}}/\${aws:PrincipalTag/${AGENT_TAGS.vm}}.json`);
  expect(get.Condition).toEqual({ StringLike: { [`aws:PrincipalTag/${AGENT_TAGS.resourceGroup}`]: '?*', [`aws:PrincipalTag/${AGENT_TAGS.vm}`]: '?*' } });
  const invoke = statements.find((s) => s.Action === 'execute-api:Invoke')!;
  // The canary's report route, for its own VM only: API Gateway refuses any other path before the function runs.
  expect(text(invoke.Resource)).toContain(`/$default/POST/v1/agents/\${aws:PrincipalTag/${AGENT_TAGS.resourceGroup}}/\${aws:PrincipalTag/${AGENT_TAGS.vm}}/canary-reports`);
  expect(invoke.Condition).toEqual(get.Condition);
  expect(statements.flatMap((s) => s.Action).sort()).toEqual(['execute-api:Invoke', 'kms:Decrypt', 'kms:GenerateDataKey', 's3:GetObject', 's3:PutObject']);
  template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: 'POST /v1/agents/{rg}/{vm}/canary-reports', AuthorizationType: 'AWS_IAM' });
});

test('alarms on dead letters, delayed events, function errors and throttles go to an SNS topic', () => {
  template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1, AlarmActions: [Match.anyValue()] });
  template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateAgeOfOldestMessage', Threshold: 300 });
  expect(Object.keys(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'Errors' } }))).toHaveLength(7);
  expect(Object.keys(template.findResources('AWS::CloudWatch::Alarm', { Properties: { MetricName: 'Throttles' } }))).toHaveLength(7);
  template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
});

test('the master key is generated in Secrets Manager, never in the template or the environment', () => {
  template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: Match.objectLike({ PasswordLength: 64 }) });
  const json = JSON.stringify(template.toJSON());
  expect(json).not.toMatch(/RINGMASTER_MASTER_KEY"\s*:/);
  const reconciler = Object.values(template.findResources('AWS::Lambda::Function')).find((f) => JSON.stringify(f).includes('RINGMASTER_MASTER_KEY_SECRET'));
  expect(reconciler).toBeDefined();
});

test('documents are re-signed before they expire: a schedule runs the refresh function, which may only list state/ and queue events', () => {
  template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)', Targets: [Match.objectLike({ Arn: Match.anyValue() })] });
  const policies = template.findResources('AWS::IAM::Policy');
  const statements = Object.values(policies)
    .filter((p) => JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles).includes('RefreshServiceRole'))
    .flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Array<{ Action: string | string[]; Condition?: unknown }> } } }).Properties.PolicyDocument.Statement);
  const actions = statements.flatMap((s) => [s.Action].flat()).sort();
  expect(actions.filter((a) => a.startsWith('s3:'))).toEqual(['s3:ListBucket']);
  expect(statements.find((s) => s.Action === 's3:ListBucket')!.Condition).toEqual({ StringLike: { 's3:prefix': ['state/*'] } });
  expect(actions).toContain('sqs:SendMessage');
  expect(actions.some((a) => a.startsWith('s3:Get') || a.startsWith('s3:Put') || a.startsWith('secretsmanager:'))).toBe(false);
});

test('the cluster function (open without IAM) reads only cluster-auth/, never the state with every secret', () => {
  const policies = template.findResources('AWS::IAM::Policy');
  const statements = Object.values(policies)
    .filter((p) => JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles).includes('ClusterApiServiceRole'))
    .flatMap((p) => (p as { Properties: { PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown }> } } }).Properties.PolicyDocument.Statement);
  const s3Resources = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('s3:'))).map((s) => JSON.stringify(s.Resource));
  expect(s3Resources.some((r) => r.includes('/cluster-auth/*'))).toBe(true);
  expect(s3Resources.some((r) => r.includes('/state/'))).toBe(false);
});

type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
/** Every statement of every IAM policy, with the roles it is attached to. */
const grantsIn = (made: Template) =>
  Object.values(made.findResources('AWS::IAM::Policy')).flatMap((p) => {
    const { Roles, PolicyDocument } = (p as { Properties: { Roles: unknown; PolicyDocument: { Statement: Statement[] } } }).Properties;
    return PolicyDocument.Statement.map((statement) => ({ roles: JSON.stringify(Roles), actions: [statement.Action].flat(), resource: JSON.stringify(statement.Resource) }));
  });
const rolesWith = (made: Template, action: string, resource?: string) =>
  [...new Set(grantsIn(made).filter((g) => g.actions.some((a) => a === action || (a.endsWith('*') && action.startsWith(a.slice(0, -1)))) && (!resource || g.resource.includes(resource))).map((g) => g.roles))];
const logicalId = (made: Template, type: string, match: (resource: unknown) => boolean) => Object.entries(made.findResources(type)).find(([, r]) => match(r))![0];

describe('documents signed under a KMS root', () => {
  test('the root is an asymmetric ECC_NIST_P256 signing key, kept when the stack goes', () => {
    template.hasResource('AWS::KMS::Key', { Properties: { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }, DeletionPolicy: 'Retain' });
  });

  test('kms:Sign on the root is granted to the renewer only, and no key policy grants it to anyone else', () => {
    expect(rolesWith(template, 'kms:Sign')).toEqual([expect.stringContaining('RenewerServiceRole')]);
    expect(rolesWith(template, 'kms:Sign')[0]).not.toMatch(/Reconciler|Refresh|Api/);
    const root = logicalId(template, 'AWS::KMS::Key', (r) => JSON.stringify(r).includes('ECC_NIST_P256'));
    const keyPolicy = (template.findResources('AWS::KMS::Key')[root] as { Properties: { KeyPolicy: { Statement: Array<{ Principal: unknown }> } } }).Properties.KeyPolicy;
    // The default key policy only: it defers to IAM in this account (no function, no other principal named).
    expect(keyPolicy.Statement.map((statement) => JSON.stringify(statement.Principal))).toEqual([expect.stringMatching(/:iam::123456789012:root/)]);
    expect(grantsIn(template).find((g) => g.actions.includes('kms:Sign'))!.resource).toContain(root);
  });

  test('a daily schedule runs the renewer, which knows its root and its secret', () => {
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)', Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Renewer'), 'Arn'] } })] });
    template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ RINGMASTER_ROOT_KEY_IDS: Match.anyValue(), RINGMASTER_SIGNING_SECRET: Match.anyValue() }) } });
  });

  test('the signing credentials: the renewer reads and writes them, the reconciler only reads them, no other function touches them', () => {
    const secret = logicalId(template, 'AWS::SecretsManager::Secret', (r) => JSON.stringify(r).includes('online document key'));
    expect(rolesWith(template, 'secretsmanager:PutSecretValue', secret)).toEqual([expect.stringContaining('RenewerServiceRole')]);
    const readers = rolesWith(template, 'secretsmanager:GetSecretValue', secret);
    expect(readers).toHaveLength(2);
    expect(readers.every((roles) => /RenewerServiceRole|ReconcilerServiceRole/.test(roles))).toBe(true);
  });

  test('the first signing credentials are made during the deploy: a trigger runs the renewer once the secret and the root exist', () => {
    const trigger = Object.values(template.findResources('Custom::Trigger')) as Array<{ Properties: { HandlerArn: unknown; InvocationType: string }; DependsOn?: string[] }>;
    expect(trigger).toHaveLength(1);
    expect(JSON.stringify(trigger[0]!.Properties.HandlerArn)).toContain('Renewer');
    // Waited for (a failed first renewal fails the deploy, rather than leaving documents unsigned).
    expect(trigger[0]!.Properties.InvocationType).toBe('RequestResponse');
    const secret = logicalId(template, 'AWS::SecretsManager::Secret', (r) => JSON.stringify(r).includes('online document key'));
    expect(trigger[0]!.DependsOn).toEqual(expect.arrayContaining([secret]));
  });

  test('rotation: with two roots configured, the renewer may sign with both (to announce the new one) and the last is active', () => {
    const rotatingApp = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const roots = ['arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111', 'arn:aws:kms:eu-central-1:123456789012:key/22222222-2222-2222-2222-222222222222'];
    const rotating = Template.fromStack(new RingmasterStack(rotatingApp, 'Ringmaster-rotating', { stage: 'rotating', env: { account: '123456789012', region: 'eu-central-1' }, documentRootKeyArns: roots }));
    rotating.resourcePropertiesCountIs('AWS::KMS::Key', { KeySpec: 'ECC_NIST_P256' }, 0);
    rotating.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ RINGMASTER_ROOT_KEY_IDS: roots.join(',') }) } });
    const signing = grantsIn(rotating).filter((g) => g.actions.includes('kms:Sign'));
    expect(signing.every((g) => g.roles.includes('RenewerServiceRole'))).toBe(true);
    expect(roots.every((arn) => signing.some((g) => g.resource.includes(arn)))).toBe(true);
  });
});

describe('push over AWS IoT Core', () => {
  const devicePolicy = () => (Object.values(template.findResources('AWS::IoT::Policy'))[0] as { Properties: { PolicyDocument: { Statement: Array<{ Action: string; Resource: unknown; Condition?: unknown }> } } }).Properties.PolicyDocument.Statement;

  test('a VM\'s certificate may connect as its own thing and read its own nudge topic, nothing else (no publish)', () => {
    const statements = devicePolicy();
    expect(statements.map((s) => s.Action).sort()).toEqual(['iot:Connect', 'iot:Receive', 'iot:Subscribe']);
    const resource = (action: string) => JSON.stringify(statements.find((s) => s.Action === action)!.Resource);
    expect(resource('iot:Connect')).toContain(':client/${iot:Connection.Thing.ThingName}');
    expect(resource('iot:Subscribe')).toContain(':topicfilter/ringmaster/nudges/${iot:Connection.Thing.ThingName}');
    expect(resource('iot:Receive')).toContain(':topic/ringmaster/nudges/${iot:Connection.Thing.ThingName}');
    expect(JSON.stringify(statements)).not.toMatch(/nudges\/\*|iot:\*|iot:Publish/);
  });

  test('with the data endpoint given, the reconciler alone may publish nudges, and is told where', () => {
    expect(rolesWith(template, 'iot:Publish')).toEqual([]);
    const pushApp = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const endpoint = 'https://example-ats.iot.eu-central-1.amazonaws.com';
    const pushing = Template.fromStack(new RingmasterStack(pushApp, 'Ringmaster-push', { stage: 'push', env: { account: '123456789012', region: 'eu-central-1' }, iotDataEndpoint: endpoint }));
    expect(rolesWith(pushing, 'iot:Publish')).toEqual([expect.stringContaining('ReconcilerServiceRole')]);
    expect(grantsIn(pushing).find((g) => g.actions.includes('iot:Publish'))!.resource).toContain(':topic/ringmaster/nudges/*');
    pushing.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: Match.objectLike({ RINGMASTER_IOT_ENDPOINT: endpoint }) } });
  });
});

test("the reconciler tells VMs where to order TLS certificates: Let's Encrypt production unless the stack says otherwise; a bad setting fails the synth naming the property", () => {
  const variables = (of: Template) => (Object.values(of.findResources('AWS::Lambda::Function')).find((f) => JSON.stringify(f).includes('RINGMASTER_MASTER_KEY_SECRET')) as { Properties: { Environment: { Variables: Record<string, string> } } }).Properties.Environment.Variables;
  expect(variables(template)).toMatchObject({ RINGMASTER_ACME_DIRECTORY: 'https://acme-v02.api.letsencrypt.org/directory' });
  expect(variables(template)).not.toHaveProperty('RINGMASTER_ACME_EMAIL');
  const staging = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const configured = new RingmasterStack(staging, 'Ringmaster-staging', { stage: 'staging', acme: { directory: 'staging', email: 'ops@example.com' }, env: { account: '123456789012', region: 'eu-central-1' } });
  expect(variables(Template.fromStack(configured))).toMatchObject({ RINGMASTER_ACME_DIRECTORY: 'https://acme-staging-v02.api.letsencrypt.org/directory', RINGMASTER_ACME_EMAIL: 'ops@example.com' });
  expect(() => new RingmasterStack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Ringmaster-bad', { stage: 'bad', acme: { email: 'ops' } })).toThrow('acme.email: must be an e-mail address');
});
