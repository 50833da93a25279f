// Where the package's own files are, whether running from the repo (dist/lib) or installed.

import * as path from "node:path";

/** The package root: compiled code lives in <root>/dist/lib. */
export const packageRoot = path.resolve(__dirname, "..", "..");
export const schemasDir = path.join(packageRoot, "schemas");
/** The bundled .dc containers, findable by name from the dc-container node (not under examples/: Import > Examples would list the folder, empty of flows). */
export const bundledContainersDir = path.join(packageRoot, "containers");
