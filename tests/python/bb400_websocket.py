'''In this example we are going to connect to the Websocket server on the BB-400 and print out the IO line status every time there is a change in state.
The default port number of the Websocket server is 8989.'''

# The Brainboxes FAQ program "How do I use Python to control the IO over
# WebSockets on my BB-400", as the FAQ writes it. The one change: the
# device's address may be given on the command line.
import sys
BB400_ADDRESS = sys.argv[1] if len(sys.argv) > 1 else "ws://192.168.0.2:8989"

import websocket, json, datetime

# status dictionary contains string values for 0 and 1
status = {
        0: "off",
        1: "on"
}

# this function is called when the websocket connection is opened
def on_open(ws):
    # set all the outputs to zero on startup
    json_data = [0,0,0,0,0,0,0,0]

    print("Connected to WebSocket server setting all outputs off/open/0")

    # send the data as json string to the websocket server  to set the output lines status
    ws.send(json.dumps(json_data))

# this function is called when any error occurs when the websocket connection is open
def on_error(ws, error):
    print("Error occurred: "+ error)

# invoked after websocket connection is closed
# websocket connection can be closed using keyboard interrupt (Ctrl+C)
def on_close(ws):
    print("##### closed websocket connection #####")

def on_message(ws, message):
    '''The BB-400 sends a message everytime the state of the IO changes
        ws {object} -- the websocket connection object
        message {JSON} -- the JSON message sent by the BB-400 looks like
                            {
                                "inputs": [1,1,1,1,1,1,1,1],
                                "outputs": [0,0,0,0,0,0,0,0]
                            }
    '''

    # the response from the BB-400 is in JSON format
    # converting it to a Python object
    response = json.loads(message)
    # extract only the 'outputs' section of the response
    io_status = response["outputs"]
    # print the outputs in  readable format
    print("\n\n------"+datetime.datetime.now().strftime("%d %B %Y %I:%M:%S %p ")+"-------\n")
    print("Light: "+str(status[io_status[0]]))
    print("Modem: " + str(status[io_status[1]]))
    print("Motor: " + str(status[io_status[2]]))
    print("Pump: " + str(status[io_status[3]]))
    print("Sensor: " + str(status[io_status[4]]))
    print("Fan: " + str(status[io_status[5]]))
    print("Printer: " + str(status[io_status[6]]))
    print("Buzzer: " + str(status[io_status[7]]))

# the starting point of the program
if __name__ == "__main__":
    # The ip of the BB-400 and the port the websocket server is on
    ws_end_point = BB400_ADDRESS
    print("Opening Connection to BB-400 WebSocket Server on "+ws_end_point)

    # create a websocket connection to the websocket server on the BB-400
    # initialise the functions to be called when open, close, error and message received events occur
    ws = websocket.WebSocketApp(ws_end_point,
                                on_open= on_open,
                                on_message = on_message,
                                on_error = on_error,
                                on_close = on_close)

    # The websocket connection can be exited using Keyboard interrupt (Ctrl+C)
    print("\nPress Ctrl+C to exit the program")

    # to keep the connection open
    ws.run_forever()
