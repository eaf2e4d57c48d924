from golem_tasks import CostsSettled, Golem

# The testnet (hoodi, test GLM) is the default: free, funded by `yagna payment fund`.
testnet = {"budget": "1"}

# Mainnet pays real GLM on polygon: the account needs GLM and POL there.
mainnet = {"budget": "5", "mainnet": True, "subnet_tag": "public"}


def show_bill(event):
    print(f"spent {event.total} {event.token}")


with Golem(provider="golem", image="golem/alpine:latest", provider_options=testnet) as golem:
    golem.add_event_consumer(show_bill, kinds=(CostsSettled,))
    ...
