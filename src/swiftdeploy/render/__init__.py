"""The manifest rendered: generated/* from templates/, and the desired state (a spec hash per service) that
those files define. Pure; imports model/ and the modules beside the package."""
