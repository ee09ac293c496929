/** Where a command writes. */
export interface Io {
  out(line: string): void
  err(line: string): void
  /** Raw output without a newline (streamed bodies); default: stdout. */
  write?(chunk: string): void
}

/** One `sovra` command: one file each under runtime/cli. */
export interface Command {
  /** The usage line. */
  usage: string
  /**
   * Runs the command; resolves to the exit code.
   * @param args arguments after the command name
   * @param io where to write
   */
  run(args: string[], io: Io): Promise<number>
}
