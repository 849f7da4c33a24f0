"""rim_monai.data"""
