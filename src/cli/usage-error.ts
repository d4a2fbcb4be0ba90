/** The command line itself is wrong: the message is printed with the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}
