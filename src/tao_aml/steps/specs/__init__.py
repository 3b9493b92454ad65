"""TAO specs as trees: protobuf text, the TAO 5.0 DetectNet_v2 schema, spec edits and overrides, the
repository's templates, and spec paths made portable for the model asset.
"""
