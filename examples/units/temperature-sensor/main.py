# Temperature sensor: one DS18B20 reading every PUBLISH_INTERVAL_S seconds on
# temperature/pepeunit. `client` comes from boot.py (same global namespace).
import gc

import ds18x20
import machine
import onewire
import uasyncio as asyncio

OUTPUT = 'temperature/pepeunit'
CONVERSION_MS = 750  # a 12-bit DS18B20 conversion

sensor = None
probe = None
last_reading_ms = 0


def open_sensor():
    global sensor, probe
    pin = int(client.settings.SENSOR_PIN)
    sensor = ds18x20.DS18X20(onewire.OneWire(machine.Pin(pin)))
    found = sensor.scan()
    if not found:
        raise RuntimeError('no DS18B20 found on GPIO {}'.format(pin))
    probe = found[0]
    client.logger.info('DS18B20 found on GPIO {}'.format(pin))


async def read_celsius():
    sensor.convert_temp()
    await asyncio.sleep_ms(CONVERSION_MS)
    return sensor.read_temp(probe)


async def output_handler(client):
    global last_reading_ms
    now = client.time_manager.get_epoch_ms()
    if now - last_reading_ms < int(client.settings.PUBLISH_INTERVAL_S) * 1000:
        return
    last_reading_ms = now
    try:
        celsius = await read_celsius()
        await client.publish_to_topics(OUTPUT, '{:.2f}'.format(celsius))
    except Exception as e:
        client.logger.error('reading the DS18B20 failed: {}'.format(e))
    gc.collect()


async def input_handler(client, msg):
    # No input variables: the base commands (Update, EnvUpdate, SchemaUpdate,
    # LogSync) are handled by the client library before this is called.
    return


async def main():
    open_sensor()
    client.set_mqtt_input_handler(input_handler)
    client.set_output_handler(output_handler)
    client.subscribe_all_schema_topics()
    await client.run_main_cycle()


try:
    asyncio.run(main())
except KeyboardInterrupt:
    raise
except Exception as e:
    client.logger.critical('stopped: {}'.format(e), file_only=True)
    client.restart_device()
