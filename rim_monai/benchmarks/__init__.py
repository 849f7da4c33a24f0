"""rim_monai.benchmarks"""
