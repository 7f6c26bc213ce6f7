"""Photos as bytes and pixels: which formats may be parsed (`formats`), and safe decoding of untrusted input to
upright RGB images within byte and pixel limits (`decoding`).

The bottom of the core: it imports only Pillow and numpy, never the library, the index, the models or `serving/`.
"""
