# Relay: relay/pepeunit switches the contact, relay_state/pepeunit reports it.
# `client` comes from boot.py (same global namespace).
import machine
import uasyncio as asyncio

INPUT = 'relay/pepeunit'
OUTPUT = 'relay_state/pepeunit'
ON = ('1', 'on', 'true')
OFF = ('0', 'off', 'false')

relay = None
closed = False
report_now = True
last_report_ms = 0


def drive(on):
    global closed, report_now
    active_low = int(client.settings.RELAY_ACTIVE_LOW) == 1
    # Level high closes the contact, unless the module is active-low.
    relay.value(1 if on != active_low else 0)
    closed = on
    report_now = True


async def remember():
    try:
        await client.rest_client.set_state_storage('1' if closed else '0')
    except Exception as e:
        client.logger.warning('saving the relay state failed: {}'.format(e))


async def restore():
    try:
        saved = await client.rest_client.get_state_storage()
    except Exception as e:
        client.logger.warning('reading the saved relay state failed: {}'.format(e))
        saved = ''
    drive(str(saved).strip() == '1')


def text_of(payload):
    if isinstance(payload, (bytes, bytearray)):
        payload = payload.decode()
    return str(payload).strip().lower()


async def input_handler(client, msg):
    # Our own topic first, then one per output linked into the input (schema.json).
    if msg.topic not in client.schema.input_topic.get(INPUT, ()):
        return
    value = text_of(msg.payload)
    if value in ON:
        wanted = True
    elif value in OFF:
        wanted = False
    elif value == 'toggle':
        wanted = not closed
    else:
        client.logger.warning('ignored relay value {!r}'.format(value))
        return
    if wanted != closed:
        drive(wanted)
        client.logger.info('relay {}'.format('closed' if wanted else 'open'))
        await remember()


async def output_handler(client):
    global report_now, last_report_ms
    now = client.time_manager.get_epoch_ms()
    if not report_now and now - last_report_ms < int(client.settings.REPORT_INTERVAL_S) * 1000:
        return
    report_now = False
    last_report_ms = now
    await client.publish_to_topics(OUTPUT, '1' if closed else '0')


async def main():
    global relay
    relay = machine.Pin(int(client.settings.RELAY_PIN), machine.Pin.OUT)
    await restore()
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
