// Reading synthesized CloudFormation in tests: intrinsic functions rendered as readable placeholder
// strings, and the statements of every IAM policy in a template.

/** A value of synthesized CloudFormation (or of an ASL definition): untyped JSON, read by tests. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CfnValue = any;

/** Renders Ref/GetAtt/ImportValue/Join/Sub as strings: <Ref:X>, <X.Attr>, <Import:name>, joined text. */
export function placeholder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(placeholder);
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const [k] = keys;
    const v = obj[k];
    if (k === "Ref") return `<Ref:${v}>`;
    if (k === "Fn::GetAtt") return `<${(v as string[]).join(".")}>`;
    if (k === "Fn::ImportValue") return `<Import:${placeholder(v)}>`;
    if (k === "Fn::Join") {
      const [sep, parts] = v as [string, unknown[]];
      return parts.map((p) => String(placeholder(p))).join(sep);
    }
    if (k === "Fn::Sub") {
      const template = typeof v === "string" ? v : (v as [string])[0];
      return template.replace(/\$\{([^}]+)\}/g, (_m, name) => `<Ref:${name}>`);
    }
    if (k.startsWith("Fn::")) return `<${k}:${JSON.stringify(v)}>`;
  }
  return Object.fromEntries(keys.map((k) => [k, placeholder(obj[k])]));
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Sid?: string;
}

export type Resources = Record<string, { Type: string; Properties?: Record<string, CfnValue> }>;

/** Every statement of every IAM policy, managed policy and role inline policy of a template. */
export function iamStatements(resources: Resources): { policy: string; statement: Statement }[] {
  const out: { policy: string; statement: Statement }[] = [];
  for (const [id, r] of Object.entries(resources)) {
    const docs: unknown[] = [];
    if (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy") docs.push(r.Properties?.PolicyDocument);
    if (r.Type === "AWS::IAM::Role") for (const p of r.Properties?.Policies ?? []) docs.push(p.PolicyDocument);
    for (const doc of docs) for (const st of (doc as { Statement: Statement[] }).Statement) out.push({ policy: id, statement: st });
  }
  return out;
}

export const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The statements of the inline policies attached to one role (by the role's logical id). */
export function roleStatements(resources: Resources, roleId: string): Statement[] {
  return Object.values(resources)
    .filter(
      (r) =>
        (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy") &&
        asList(r.Properties?.Roles).some((x: CfnValue) => x?.Ref === roleId),
    )
    .flatMap((r) => r.Properties!.PolicyDocument.Statement as Statement[]);
}
