"""rim_monai.networks"""
