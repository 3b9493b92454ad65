"""Talking to Azure ML: the workspace, the job as sent (render, submit), registration for Designer, data
and model assets, the online endpoint, prebuilt images and VM sizes and prices.
"""
