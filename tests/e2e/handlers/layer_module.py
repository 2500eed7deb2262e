"""Returns a value from a module that only a layer provides."""


def handler(event, context):
    import baton_layer_probe  # in the layer's python/ folder, nowhere else

    return {"value": baton_layer_probe.VALUE}
