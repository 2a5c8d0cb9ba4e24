"""Tutorial 5: transcoders and attribution graphs (circuits).

``loading``: the preset's transcoders as SAELens ``Transcoder`` objects (both presets).
"""
