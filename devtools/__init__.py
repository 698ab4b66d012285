"""Development tools of loaxa: evaluation and scoring on labelled data, never needed on a node.

The runtime packages (``edge``, ``controller``, ``broadcasts``, ``firmware_config``) never
import from here; ``loaxa eval`` mounts these commands when the package is installed.
"""
