"""Runs on this machine: a pipeline's steps in order in docker or this Python (`tao-aml run`), and the
simulated rehearsal (`tao-aml rehearse`).
"""
