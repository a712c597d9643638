"""`videomae demo`: moving-digit videos (`digits`), pretraining vs. training from scratch end to end (`run`)."""
