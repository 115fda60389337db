// Typed access to the lake contract (spark-jobs/src/fhir_lakehouse/lake_contract.json), the one
// place that names each layer's paths and columns for TypeScript and Python alike.
import contract from "../../spark-jobs/src/fhir_lakehouse/lake_contract.json";

export const LAKE_CONTRACT = contract;
export type Layer = keyof typeof contract.layers;

/** URI of a layer under a lake root (file:///… or s3://…), e.g. layerUri("file:///w", "bronze"). */
export function layerUri(lakeRoot: string, layer: Layer): string {
  return `${lakeRoot.replace(/\/+$/, "")}/${contract.layers[layer]}`;
}

/** Relative path of one bronze part file inside the bronze layer. */
export function bronzePartPath(resourceType: string, ingestDate: string, runId: string, part: number): string {
  return contract.bronze.partitionTemplate
    .replace("{resourceType}", resourceType)
    .replace("{ingestDate}", ingestDate)
    .replace("{runId}", runId)
    .replace("{part}", String(part).padStart(5, "0"));
}

/** Relative path of a run's manifest inside the bronze layer. */
export function bronzeManifestPath(runId: string): string {
  return `${contract.bronze.runsDir}/${runId}/${contract.bronze.manifestFile}`;
}
