// The config-to-Spark mapping shared by EMR Serverless (sparkSubmitParameters) and local runs.
import { loadConfig } from "../../config/load";
import { emrWorkerConfiguration, memoryGb, sparkConf, sparkSubmitParameters } from "../../lib/core/spark-conf";

const spark = loadConfig("dev").processing.spark;

describe("sparkConf", () => {
  test("maps every tuning setting to its Spark key", () => {
    expect(sparkConf(spark)).toEqual({
      "spark.driver.memory": spark.driverMemory,
      "spark.driver.cores": String(spark.driverCores),
      "spark.executor.memory": spark.executorMemory,
      "spark.executor.cores": String(spark.executorCores),
      "spark.dynamicAllocation.enabled": "true",
      "spark.dynamicAllocation.minExecutors": String(spark.dynamicAllocation.minExecutors),
      "spark.dynamicAllocation.maxExecutors": String(spark.dynamicAllocation.maxExecutors),
      "spark.sql.adaptive.enabled": "true",
      "spark.sql.shuffle.partitions": String(spark.shufflePartitions),
      "spark.sql.autoBroadcastJoinThreshold": String(spark.autoBroadcastJoinThresholdBytes),
      "spark.memory.fraction": String(spark.memoryFraction),
      "spark.memory.storageFraction": String(spark.storageFraction),
      ...(spark.kryo ? { "spark.serializer": "org.apache.spark.serializer.KryoSerializer" } : {}),
    });
    expect(sparkConf({ ...spark, kryo: true })["spark.serializer"]).toBe("org.apache.spark.serializer.KryoSerializer");
  });

  test("without dynamic allocation the executor count is fixed; without Kryo the default serializer stays", () => {
    const conf = sparkConf({ ...spark, kryo: false, dynamicAllocation: { enabled: false, minExecutors: 0, maxExecutors: 3 } });
    expect(conf["spark.executor.instances"]).toBe("3");
    expect(conf["spark.dynamicAllocation.maxExecutors"]).toBeUndefined();
    expect(conf["spark.serializer"]).toBeUndefined();
  });
});

describe("sparkSubmitParameters", () => {
  test("renders tuning, Iceberg with the Glue catalog, the package and extras as --conf pairs", () => {
    const params = sparkSubmitParameters(spark, {
      warehouse: "s3://silver-bucket/silver",
      pyFiles: "s3://assets/pkg.zip",
      extraConf: { "spark.app.name": "x" },
    });
    const pairs = params.split(" --conf ").map((p) => p.replace(/^--conf /, ""));
    const conf = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]));
    expect(conf["spark.sql.catalog.lake"]).toBe("org.apache.iceberg.spark.SparkCatalog");
    expect(conf["spark.sql.catalog.lake.catalog-impl"]).toBe("org.apache.iceberg.aws.glue.GlueCatalog");
    expect(conf["spark.sql.catalog.lake.warehouse"]).toBe("s3://silver-bucket/silver");
    expect(conf["spark.sql.extensions"]).toBe("org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions");
    expect(conf["spark.submit.pyFiles"]).toBe("s3://assets/pkg.zip");
    expect(conf["spark.executor.memory"]).toBe(spark.executorMemory);
    expect(conf["spark.sql.shuffle.partitions"]).toBe(String(spark.shufflePartitions));
    expect(conf["spark.app.name"]).toBe("x");
  });

  test("refuses a value with whitespace (EMR would split it into two arguments)", () => {
    expect(() => sparkSubmitParameters(spark, { warehouse: "s3://a b" })).toThrow(/whitespace/);
  });
});

describe("emrWorkerConfiguration", () => {
  test("picks the smallest worker holding cores and memory plus 10% overhead", () => {
    expect(emrWorkerConfiguration(4, "14g")).toEqual({ cpu: "4 vCPU", memory: "16 GB", disk: "20 GB" });
    expect(emrWorkerConfiguration(2, "8g")).toEqual({ cpu: "2 vCPU", memory: "9 GB", disk: "20 GB" });
    expect(emrWorkerConfiguration(3, "1g")).toEqual({ cpu: "4 vCPU", memory: "8 GB", disk: "20 GB" });
    expect(memoryGb("512m")).toBe(0.5);
  });

  test("rejects sizes no worker has", () => {
    expect(() => emrWorkerConfiguration(4, "40g")).toThrow(/does not fit/);
    expect(() => emrWorkerConfiguration(32, "4g")).toThrow(/vCPU/);
  });
});
