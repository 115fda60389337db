// The client configuration file that `simulate --client-out FILE` writes and `extract --client FILE`
// reads: everything a SMART Backend Services client needs to reach one FHIR server. It names the
// private key FILE; it never holds the key itself.
import * as fs from "node:fs";
import { z } from "zod";

export const ClientConfigFileSchema = z
  .object({
    /** FHIR R4 base URL, e.g. http://127.0.0.1:8080/api/FHIR/R4 */
    baseUrl: z.string().url(),
    /** OAuth 2.0 token endpoint (the `aud` of the client assertion). */
    tokenUrl: z.string().url(),
    clientId: z.string().min(1),
    /** Path of the PEM (PKCS#8) private key file. */
    privateKeyFile: z.string().min(1),
    /** `kid` header of the client assertion. */
    keyId: z.string().min(1).optional(),
    algorithm: z.enum(["RS384", "RS256", "RS512"]).default("RS384"),
    /** The Group to export or crawl. */
    groupId: z.string().min(1),
    /** Every group the server offers (the simulator lists all of them). */
    groupIds: z.array(z.string().min(1)).optional(),
  })
  .strict();

export type ClientConfigFile = z.infer<typeof ClientConfigFileSchema>;

/** Reads and validates a client configuration file; errors name the field and the problem. */
export function readClientConfigFile(file: string): ClientConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`client config ${file}: ${(e as Error).message}`);
  }
  const parsed = ClientConfigFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`client config ${file}: ${problems}`);
  }
  return parsed.data;
}

/** Writes a client configuration file (mode 0600: it points at a key). */
export function writeClientConfigFile(file: string, config: ClientConfigFile): void {
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
}
