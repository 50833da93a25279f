// A throwaway TLS certificate for the tests that run wss:// and mqtts:// on 127.0.0.1.
import { execFileSync } from "node:child_process";
import * as path from "node:path";

/** A self-signed certificate for 127.0.0.1 in `dir`, made with openssl (.ci/run installs it if missing). */
export function selfSignedCert(dir: string): { key: string; cert: string } {
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  const subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"];
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", ...subject], { stdio: "ignore" });
  return { key, cert };
}
