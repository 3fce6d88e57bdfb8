# The Brainboxes FAQ program "How do I use Python to control the IO over Unix
# Domain Socket on the BB-400?", as the FAQ writes it. The one change: another
# socket path may be given on the command line (the device's is
# /var/run/bb-io.sock).
import sys
import urllib.parse

import json
import requests_unixsocket

socket_name = "http+unix://%2Fvar%2Frun%2Fbb-io.sock"
if len(sys.argv) > 1:
    socket_name = "http+unix://" + urllib.parse.quote(sys.argv[1], safe="")
session = requests_unixsocket.Session()

def getRequest(led):
    response = requests_unixsocket.get(socket_name+led)
    if response:
        return json.loads(response.text)
    else:
        return "Error occurred: " + str(response.status_code) + " " + str(response.text)

def postRequest(led, data):
    postresponse = session.post(socket_name+led, data=str(data))
    if postresponse:
        return postresponse
    else:
        return "Error occurred: " + str(postresponse.status_code) + " " + str(postresponse.text)

if __name__ == "__main__":

    io_lines = {
        "DIO0": "/io/outputs/0",
        "DIO1":  "/io/outputs/1",
        "DIO2": "/io/outputs/2",
        "DIO3": "/io/outputs/3",
        "DIO4": "/io/outputs/4",
        "DIO5": "/io/outputs/5",
        "DIO6":  "/io/outputs/6",
        "DIO7": "/io/outputs/7",
        "all_outputs":  "/io/outputs"
    }

    # GET status of IO lines
    print("Current IO status is: ")
    response = getRequest(io_lines["all_outputs"])
    print(response)

    getresponseDIO0 = getRequest(io_lines["DIO0"])
    getresponseDIO1 = getRequest(io_lines["DIO1"])
    getresponseDIO2 = getRequest(io_lines["DIO2"])
    getresponseDIO3 = getRequest(io_lines["DIO3"])
    getresponseDIO4 = getRequest(io_lines["DIO4"])
    getresponseDIO5 = getRequest(io_lines["DIO5"])
    getresponseDIO6 = getRequest(io_lines["DIO6"])
    getresponseDIO7 = getRequest(io_lines["DIO7"])
    print("DIO0: " + str(getresponseDIO0))
    print("DIO1: " + str(getresponseDIO1))
    print("DIO2: " + str(getresponseDIO2))
    print("DIO3: " + str(getresponseDIO3))
    print("DIO4: " + str(getresponseDIO4))
    print("DIO5: " + str(getresponseDIO5))
    print("DIO6: " + str(getresponseDIO6))
    print("DIO7: " + str(getresponseDIO7))

    print("\nSending POST request via Unix Domain Socket to change IO status to 0 or 1")
    # #POST Request to set the IO line states to 0 and 1
    postresponseDIO0 = postRequest(io_lines["DIO0"], 0)
    postresponseDIO1 = postRequest(io_lines["DIO1"], 1)
    postresponseDIO2 = postRequest(io_lines["DIO2"], 0)
    postresponseDIO3 = postRequest(io_lines["DIO3"], 1)
    postresponseDIO4 = postRequest(io_lines["DIO4"], 1)
    postresponseDIO5 = postRequest(io_lines["DIO5"], 0)
    postresponseDIO6 = postRequest(io_lines["DIO6"], 0)
    postresponseDIO7 = postRequest(io_lines["DIO7"], 1)
    print(postresponseDIO0, postresponseDIO1, postresponseDIO2, postresponseDIO3,
          postresponseDIO4, postresponseDIO5, postresponseDIO6, postresponseDIO7)

    print("\nNew IO status is as follows: ")
    # Print new IO status
    response = getRequest(io_lines["all_outputs"])
    print(response)
