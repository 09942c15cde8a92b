# Runs first on every start: builds the Pepeunit client (kept as the global `client`,
# which main.py uses), joins Wi-Fi and sets the clock for log timestamps.
import gc

import uasyncio as asyncio

from pepeunit_micropython_client.client import PepeunitClient

client = PepeunitClient(
    env_file_path='/env.json',
    schema_file_path='/schema.json',
    log_file_path='/log.json',
    ff_wifi_manager_enable=True,
)


async def _start_network():
    await client.wifi_manager.connect_forever()
    await client.time_manager.sync_epoch_ms_from_ntp()


asyncio.run(_start_network())
gc.collect()
