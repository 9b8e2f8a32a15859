// Imported first by the CLI, before anything touches libuv's thread pool: uploads
// fsync in the background while other requests read and write files, and the default
// of 4 threads would let a few long syncs stall every other file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';
