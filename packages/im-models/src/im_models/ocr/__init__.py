"""PP-OCR families: DB text detection, text-line angle classification and CTC text recognition."""
