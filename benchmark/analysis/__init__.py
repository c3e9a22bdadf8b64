"""Analysis of run directories: aggregation, statistics, figures, tables, report."""
