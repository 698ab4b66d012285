"""Scoring of the camera pipeline (motion on CDnet folders, helmets on YOLO labels, left
objects on labelled clips) and the ``loaxa eval`` commands that print it."""
