"""Datasets: checks and loaders for Ultralytics data YAMLs, VOC/COCO conversion, the synthetic demo data, and the one
writer of YOLO label files. Imports only the foundation modules."""
