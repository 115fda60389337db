// One EMR Serverless job run as the CLI sees it: its state and the resources it used, from
// GetJobRun. billedResourceUtilization is what AWS charges (1-minute minimum per worker, the free
// 20 GB of storage per worker excluded); totalResourceUtilization is what the job actually used.
import { GetJobRunCommand, type EMRServerlessClient, type JobRun } from "@aws-sdk/client-emr-serverless";
import { emrJobCost, type EmrJobCost, type EmrUtilisation, type PriceTable } from "./cost";

export const EMR_TERMINAL_STATES: ReadonlySet<string> = new Set(["SUCCESS", "FAILED", "CANCELLED"]);

export interface JobRunUsage {
  applicationId: string;
  jobRunId: string;
  name?: string;
  state: string;
  stateDetails?: string;
  /** Seconds the job ran, as EMR reports it (totalExecutionDurationSeconds). */
  durationSeconds?: number;
  billed?: EmrUtilisation;
  total?: EmrUtilisation;
  /** Cost from the billed utilisation (undefined until EMR reports it, i.e. while running). */
  cost?: EmrJobCost;
}

function utilisation(u: { vCPUHour?: number; memoryGBHour?: number; storageGBHour?: number } | undefined): EmrUtilisation | undefined {
  if (!u) return undefined;
  return { vCPUHour: u.vCPUHour ?? 0, memoryGBHour: u.memoryGBHour ?? 0, storageGBHour: u.storageGBHour ?? 0 };
}

/** Pure: the usage of a GetJobRun answer. */
export function usageOfJobRun(jobRun: JobRun, prices?: PriceTable): JobRunUsage {
  const billed = utilisation(jobRun.billedResourceUtilization);
  return {
    applicationId: jobRun.applicationId ?? "",
    jobRunId: jobRun.jobRunId ?? "",
    name: jobRun.name,
    state: jobRun.state ?? "UNKNOWN",
    stateDetails: jobRun.stateDetails || undefined,
    durationSeconds: jobRun.totalExecutionDurationSeconds,
    billed,
    total: utilisation(jobRun.totalResourceUtilization),
    cost: billed ? emrJobCost(billed, prices) : undefined,
  };
}

/** GetJobRun, reduced to state and usage. */
export async function getJobRunUsage(
  clients: { emrServerless: EMRServerlessClient },
  applicationId: string,
  jobRunId: string,
  prices?: PriceTable,
): Promise<JobRunUsage> {
  const answer = await clients.emrServerless.send(new GetJobRunCommand({ applicationId, jobRunId }));
  if (!answer.jobRun) throw new Error(`GetJobRun returned no job run for ${applicationId}/${jobRunId}`);
  return usageOfJobRun(answer.jobRun, prices);
}
