"""Aggregation and reports: a results folder as tidy tables, statistics over seeds, tables and figures per ablation."""
