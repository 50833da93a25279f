// The commands' options, parsed the same way for each: node:util parseArgs, strict, with
// positionals, so that --opt value and --opt=value both work; a problem comes back as a short
// sentence for the usage line, never as an exception.

import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCommand<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    return parseError(e);
  }
}

/** parseArgs' own messages are long; the gist and the option are enough. */
function parseError(e: unknown): string {
  const m = (e as Error).message;
  const option = /'(?:-\w, )?(--?[^' ]*)/.exec(m)?.[1];
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option ?? m}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") return option ? `${option} needs a value` : m;
  return m.split("\n")[0] ?? m;
}
