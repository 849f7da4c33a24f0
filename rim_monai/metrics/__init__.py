"""rim_monai.metrics"""
