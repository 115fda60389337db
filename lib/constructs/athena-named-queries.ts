// One Athena named query per `*.sql` file of a folder, read at synth time: the analysts' questions
// (analytics/queries/) become saved queries in the workgroup, named after their files. The leading
// `--` comment lines of a file are its description.
import * as athena from "aws-cdk-lib/aws-athena";
import { Construct } from "constructs";
import * as fs from "node:fs";
import * as path from "node:path";

export interface AthenaNamedQueriesProps {
  /** Folder of *.sql files; missing or empty means no named queries. */
  readonly queriesDir: string;
  readonly workGroup: string;
  /** Database unqualified table names resolve in (the gold database). */
  readonly database: string;
}

export interface SqlQueryFile {
  name: string;
  description: string;
  sql: string;
}

/** Reads the *.sql files of a folder, sorted by name (pure apart from the reads). */
export function readQueryFiles(dir: string): SqlQueryFile[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .map((file) => {
      const sql = fs.readFileSync(path.join(dir, file), "utf8").trim();
      const comments: string[] = [];
      for (const line of sql.split("\n")) {
        const m = /^\s*--\s?(.*)$/.exec(line);
        if (!m) break;
        comments.push(m[1].trim());
      }
      const name = file.replace(/\.sql$/, "");
      // Athena: description 1..1024 chars, query string <= 262144.
      const description = (comments.filter(Boolean).join(" ") || name).slice(0, 1024);
      if (!sql) throw new Error(`${path.join(dir, file)} is empty`);
      return { name, description, sql };
    });
}

export class AthenaNamedQueries extends Construct {
  readonly queries: athena.CfnNamedQuery[];
  readonly files: SqlQueryFile[];

  constructor(scope: Construct, id: string, props: AthenaNamedQueriesProps) {
    super(scope, id);
    this.files = readQueryFiles(props.queriesDir);
    this.queries = this.files.map(
      (q) =>
        new athena.CfnNamedQuery(this, q.name, {
          name: q.name,
          description: q.description,
          database: props.database,
          workGroup: props.workGroup,
          queryString: q.sql,
        }),
    );
  }
}
