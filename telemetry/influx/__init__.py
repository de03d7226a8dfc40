"""telemetry/influx"""
