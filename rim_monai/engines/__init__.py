"""rim_monai.engines"""
