"""The Spark runner (the `[spark]` extra): the batch's results, computed on a Spark cluster, as Parquet tables."""
