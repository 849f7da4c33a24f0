"""rim_monai.classical"""
