// The JSON Schemas under schemas/ and how this package reads Ajv's answers: one Ajv setup
// (with the plain-words `errorMessage` keyword that VS Code shows too), compiled once per
// schema, and JSON paths as a user reads them (`glyphs[2].tick`, not `/glyphs/2/tick`).

import Ajv, { type Options, type ValidateFunction } from "ajv";
import * as fs from "node:fs";
import * as path from "node:path";
import { schemasDir } from "./paths";

/** A schema's rule in plain words, as `errorMessage` beside the rule it explains. */
export interface SchemaNode {
  errorMessage?: string;
  properties?: Record<string, SchemaNode>;
}

/** Ajv with the `errorMessage` keyword, over one schema file of schemas/; `ajv.getSchema` finds its definitions. */
export function loadSchema(file: string, options: Options): { ajv: Ajv; schema: { $id: string } } {
  const schema = JSON.parse(fs.readFileSync(path.join(schemasDir, file), "utf8")) as { $id: string }; // the package's own schema
  const ajv = new Ajv(options);
  ajv.addKeyword({ keyword: "errorMessage", schemaType: "string" });
  ajv.addSchema(schema);
  return { ajv, schema };
}

/** The validator of one definition (or the whole schema with ref ""), which must exist. */
export function validatorOf(loaded: { ajv: Ajv; schema: { $id: string } }, ref: string): ValidateFunction {
  const v = loaded.ajv.getSchema(`${loaded.schema.$id}${ref}`);
  if (!v) throw new Error(`schema ${loaded.schema.$id} has no ${ref || "root"}`);
  return v;
}

/** `/glyphs/2/tick` -> ["glyphs", "2", "tick"]. */
export function pointerSteps(instancePath: string): string[] {
  return instancePath === ""
    ? []
    : instancePath
        .slice(1)
        .split("/")
        .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** `/glyphs/2/tick` -> `glyphs[2].tick`; keys that are not identifiers are quoted. */
export function jsonPath(instancePath: string, extraKey?: string): string {
  const parts = pointerSteps(instancePath);
  if (extraKey !== undefined) parts.push(extraKey);
  let out = "";
  for (const p of parts) {
    if (/^(0|[1-9][0-9]*)$/.test(p)) out += `[${p}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) out += out === "" ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out === "" ? "(root)" : out;
}
