/** In-process handlers log nothing during tests unless asked (RINGMASTER_LOG_LEVEL=INFO). */
process.env.RINGMASTER_LOG_LEVEL ??= 'SILENT';
