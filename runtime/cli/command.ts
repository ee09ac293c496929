/** Where a command writes. */
export interface Io {
  out(line: string): void
  err(line: string): void
  /** Raw text output without a newline (streamed text bodies); default: stdout. */
  write?(chunk: string): void
  /**
   * Raw bytes, exactly as given, never decoded (object bodies); resolves once the chunk is taken, so a large body
   * streams with backpressure instead of being buffered. Default: stdout.
   */
  bytes?(chunk: Uint8Array): void | Promise<void>
}

/** One `sovra` command: one file each under runtime/cli. */
export interface Command {
  /** The usage line. */
  usage: string
  /**
   * Runs the command; resolves to the exit code.
   * @param args arguments after the command name
   * @param io where to write
   * @param env environment variables it reads (default the process's; a host running it for the CLI adds the caller's)
   */
  run(args: string[], io: Io, env?: Record<string, string | undefined>): Promise<number>
}

/**
 * Streams a body to the command's byte output ({@link Io.bytes}, else stdout) chunk by chunk, undecoded. A reader
 * that goes away (`sovra objects get x | head -c 100`: EPIPE on stdout) ends the copy quietly, as `cat` does.
 * @param io where to write
 * @param body the bytes
 * @example
 * const obj = await bucket.get('a.bin')
 * if (obj !== null) await writeBytes(io, obj.body)
 */
export async function writeBytes(io: Io, body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (body === null) return
  const reader = body.getReader()
  const sink = io.bytes?.bind(io) ?? stdoutBytes
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      try {
        await sink(value)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EPIPE') return void (await reader.cancel().catch(() => {}))
        throw error
      }
    }
  } finally {
    reader.releaseLock()
  }
}

/** Writes to stdout and waits until the chunk is flushed; a write error (EPIPE) rejects instead of crashing. */
function stdoutBytes(chunk: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    // Without a listener, a failed write to stdout is an uncaught 'error' event; the callback reports it.
    const ignore = (): void => {}
    process.stdout.on('error', ignore)
    process.stdout.write(chunk, (error) => {
      process.stdout.off('error', ignore)
      if (error === null || error === undefined) resolve()
      else reject(error)
    })
  })
}
