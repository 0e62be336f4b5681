/**
 * `node scripts/build-page.ts <dir>`: the status page's built files (page/assets.ts) into a
 * folder. The CDK app runs it after bundling the status function, so the Lambda serves the
 * same files the local control plane builds at start.
 */
import { writePageAssets } from '../page/assets.ts';

const directory = process.argv[2];
if (!directory) {
  process.stderr.write('usage: node scripts/build-page.ts <output folder>\n');
  process.exit(2);
}
await writePageAssets(directory);
