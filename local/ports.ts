/** Where `ringmaster serve` listens by default: the API (and the status page), and the embedded S3 endpoint. One place, so the CLI, the agent's settings and the server agree. */
export const DEFAULT_API_PORT = 7480;
export const DEFAULT_S3_PORT = 7481;
